"""emolive plugins package."""
