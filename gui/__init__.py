"""The Layerlab application: the main window, the open document, undo commands and files."""
