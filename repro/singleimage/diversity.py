"""Feature diversity over the optimisation steps (GDC Section VI, Fig. 11).

The paper records, at two pixels, the feature vectors of the layer under test at each of the
50 optimisation steps and shows with t-SNE that GDC's are more diverse than a dilated
convolution's. Beyond the picture this project measures it: :func:`feature_spread` is the mean
pairwise distance between one pixel's vectors across steps, averaged over the pixels, divided
by the distance between the pixels' mean vectors, so a layer whose features are merely larger
does not score higher. Over the steps the weights also change, so this spread mixes the
drift of training (smooth, in every layer) with the scatter of random sampling;
:func:`feature_jitter` isolates the scatter: the mean distance of each step's vector from the
midpoint of its two neighbours (a second difference, zero for a smooth trajectory), relative to
the same between-pixel distance.
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE


def feature_spread(features: np.ndarray) -> float:
    """Within-pixel spread relative to between-pixel distance.

    Args:
        features: ``[steps, P, C]`` feature vectors of ``P >= 2`` pixels over the steps
            (``SegmentationResult.probe_features``).

    Returns:
        mean over pixels of the mean pairwise Euclidean distance between steps, divided by the
        mean pairwise distance between the pixels' mean vectors.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 3 or features.shape[0] < 2 or features.shape[1] < 2:
        raise ValueError(
            f"features: expected [steps >= 2, pixels >= 2, C], got shape {features.shape}"
        )
    steps, pixels = features.shape[:2]
    within = []
    for p in range(pixels):
        x = features[:, p]
        distances = np.linalg.norm(x[:, None] - x[None], axis=-1)
        within.append(distances.sum() / (steps * (steps - 1)))
    centres = features.mean(axis=0)
    between = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    between_mean = between.sum() / (pixels * (pixels - 1))
    if between_mean == 0:
        raise ValueError("features: the pixels' mean vectors coincide; spread is undefined")
    return float(np.mean(within) / between_mean)


def _between_pixels(features: np.ndarray) -> float:
    pixels = features.shape[1]
    centres = features.mean(axis=0)
    between = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    between_mean = between.sum() / (pixels * (pixels - 1))
    if between_mean == 0:
        raise ValueError("features: the pixels' mean vectors coincide; the ratio is undefined")
    return float(between_mean)


def feature_jitter(features: np.ndarray) -> float:
    """Step-to-step scatter around a smooth trajectory, relative to the between-pixel distance.

    ``mean_t,p ||f[t, p] - (f[t-1, p] + f[t+1, p]) / 2||`` divided by the mean distance between
    the pixels' mean vectors; ``features`` is ``[steps >= 3, P >= 2, C]``.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 3 or features.shape[0] < 3 or features.shape[1] < 2:
        raise ValueError(
            f"features: expected [steps >= 3, pixels >= 2, C], got shape {features.shape}"
        )
    midpoints = 0.5 * (features[:-2] + features[2:])
    scatter = np.linalg.norm(features[1:-1] - midpoints, axis=-1).mean()
    return float(scatter / _between_pixels(features))


def tsne_embedding(features: np.ndarray, seed: int = 0, perplexity: float = 15.0) -> np.ndarray:
    """t-SNE (van der Maaten and Hinton 2008) of ``[steps, P, C]`` vectors into ``[steps, P, 2]``."""
    features = np.asarray(features, dtype=np.float64)
    steps, pixels, channels = features.shape
    flat = features.reshape(steps * pixels, channels)
    perplexity = min(perplexity, (flat.shape[0] - 1) / 3)
    embedded = TSNE(
        n_components=2, perplexity=perplexity, random_state=seed, init="pca"
    ).fit_transform(flat)
    return embedded.reshape(steps, pixels, 2)
