"""framework-hog: an example plugin package for ``framework``.

It registers, through the ``framework.plugins`` entry-point group only, a MaskFeat HOG
reconstruction target (:mod:`framework_hog.hog`), a checkerboard image masking strategy
(:mod:`framework_hog.checkerboard`) and a CSV logger built on the step-end and
eval-results hooks (:mod:`framework_hog.csv_log`).
"""
