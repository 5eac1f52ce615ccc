"""Natural-image patches cut from the photos bundled with scikit-image (no download).

Pipeline (research note ipvae.md, sections 2 and 6.2; after Olshausen & Field and the P-VAE
pre-processing):

1. each photo is converted to grey levels in [0, 1] and z-scored;
2. whitened in the Fourier domain with R(f) = f exp(-(f/f0)^4), f0 = 0.4 cycles/pixel
   (frequency grid [-0.5, 0.5)), which flattens the 1/f amplitude spectrum and removes the
   highest (noisy, aliased) frequencies;
3. a 4-pixel border is cropped (the whitening filter wraps around) and the image is z-scored;
4. patch positions are drawn with a fixed seed; the top 80 % of each image's rows give training
   patches and the bottom 20 % test patches, so train and test never overlap;
5. contrast normalisation: the flattest 25 % of patches (lowest variance) are dropped, then each
   patch is made zero-mean and divided by its own standard deviation (unit variance per pixel).

Everything is computed on demand (well under a second); nothing is cached on disk.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: photos used (natural scenes and textures; synthetic images such as text or logos are left out)
IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon", "clock")

SPECS = {  # name -> (patch side, train count, test count)
    "patches8": (8, 16000, 2000),
    "patches16": (16, 8000, 1000),
}

F0 = 0.4
BORDER = 4
DROP_FLAT = 0.25
TRAIN_ROWS = 0.8


def _grey(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray weights
    return img / 255.0


def whiten(img: np.ndarray, f0: float = F0) -> np.ndarray:
    """Fourier whitening with R(f) = f exp(-(f/f0)^4); returns a z-scored image."""
    img = (img - img.mean()) / max(img.std(), 1e-12)
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    f = np.hypot(fy, fx)
    out = np.real(np.fft.ifft2(np.fft.fft2(img) * f * np.exp(-((f / f0) ** 4))))
    return out


def _sample(img: np.ndarray, side: int, n: int, rng) -> np.ndarray:
    ys = rng.integers(0, img.shape[0] - side + 1, n)
    xs = rng.integers(0, img.shape[1] - side + 1, n)
    return np.stack([img[y:y + side, x:x + side].ravel() for y, x in zip(ys, xs)])


def _normalise(p: np.ndarray, keep: int, rng) -> np.ndarray:
    var = p.var(1)
    order = np.argsort(var)[::-1]  # most contrast first
    p = p[np.sort(order[:keep])]
    p = p - p.mean(1, keepdims=True)
    p = p / p.std(1, keepdims=True)
    return p[rng.permutation(len(p))]


@lru_cache(maxsize=2)
def _build(name: str) -> np.ndarray:
    side, n_train, n_test = SPECS[name]
    rng = np.random.default_rng(20241022 + side)
    per_train = -(-int(n_train / (1 - DROP_FLAT)) // len(IMAGES))
    per_test = -(-int(n_test / (1 - DROP_FLAT)) // len(IMAGES))
    train, test = [], []
    for im_name in IMAGES:
        w = whiten(_grey(im_name))[BORDER:-BORDER, BORDER:-BORDER]
        w = (w - w.mean()) / w.std()
        cut = int(w.shape[0] * TRAIN_ROWS)
        train.append(_sample(w[:cut], side, per_train, rng))
        test.append(_sample(w[cut:], side, per_test, rng))
    tr = _normalise(np.concatenate(train), n_train, rng)
    te = _normalise(np.concatenate(test), n_test, rng)
    out = np.concatenate([tr, te])
    out.setflags(write=False)
    return out


def load_patches(name: str) -> np.ndarray:
    """All patches of ``name`` (train first, then test) as a (n, side*side) float64 array."""
    if name not in SPECS:
        raise ValueError(f"unknown patch set {name!r}; known: {', '.join(SPECS)}")
    return _build(name).copy()
