"""The library: the documents as a folder tree, what is included, problems, the fit banner."""
