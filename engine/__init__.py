"""emolive engine package."""
