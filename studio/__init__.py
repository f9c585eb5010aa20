"""Latent Studio's window: PySide6 and pyqtgraph panels that drive the worker. Never imports torch."""
