"""Pictures drawn with PIL: what views mask (``masks``) and training curves (``curves``)."""
