"""emolive trainer package."""
