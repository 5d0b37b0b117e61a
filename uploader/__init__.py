"""uploader package."""
