"""One module per controller; each defines a ``base.Controller`` subclass with a ``name``.

The manager finds them by importing every module here, so adding a controller is adding a file.
"""
