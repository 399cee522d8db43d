"""Transformations: on-demand feature views run the same code offline and online.

``code`` stores a function as normalized source; ``execute`` runs it over a batch or a row and
checks what it returns; ``offline`` and ``online`` fit it into retrievals and lookups.
"""
