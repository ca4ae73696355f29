"""emolive gui package."""
