"""Array data referenced by specs: users' files (.npy/.npz/.onnx) and bundled datasets."""

from .arrays import (
                     DATASETS,
                     TEST_SIZES,
                     TRANSFORMS,
                     DataError,
                     array_header,
                     dataset_shape,
                     load_array,
                     train_test,
                     transformed_shape,
)

__all__ = ["DATASETS", "TEST_SIZES", "TRANSFORMS", "DataError", "array_header", "dataset_shape", "load_array",
           "train_test", "transformed_shape"]
