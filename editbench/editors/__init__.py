"""Model-editing methods, one file each."""
