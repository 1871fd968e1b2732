"""Image feature extractors.

:mod:`~fmrikit.features.registry` (``get_extractor``: gabor, effnet-lite0, clip, dinov2),
:mod:`~fmrikit.features.cache` (``dataset_features``: features of a dataset's stimuli, cached per
stimulus source and extractor) and :mod:`~fmrikit.features.networks` (the evaluation protocol's
networks). Nothing heavy is imported here.
"""
