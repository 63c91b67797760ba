"""The context map: what fills the model's window, as a bar and as a list of folders and files."""
