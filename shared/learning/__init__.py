"""Learning core: baseline validation, Isolation Forests, the vibration autoencoder, ONNX export,
the on-disk model registry and ONNX scoring.

Submodules are imported explicitly (``from shared.learning.scoring import OnnxModel``) so that a
scorer pulls in only numpy + onnxruntime, never torch or scikit-learn:

* :mod:`.baseline` — ``Baseline``, ``validate_baseline`` (numpy/scipy)
* :mod:`.forest` — ``train_forest``, ``export_forest_onnx`` (scikit-learn, onnx)
* :mod:`.forest_onnx` — the forest's exact single-node ONNX writer (scikit-learn, onnx)
* :mod:`.autoencoder` — ``train_autoencoder``, ``export_autoencoder_onnx`` (torch)
* :mod:`.calibration` — ``calibrate`` and its errors (all of the above)
* :mod:`.scoring` — ``OnnxModel``, ``RollingScore``, ``classify`` (onnxruntime)
* :mod:`.registry` — ``save_version``, ``load_manifest``, ``latest_version``, ... (file I/O)
"""
