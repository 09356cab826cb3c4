"""Training recipe, evaluation and shipped detector model(s) for `autonomy.perception`.

torch is needed only by `models.arch` / `models.train` (optional extra ``train``); the split, the data
readers and the evaluation run with the runtime dependencies alone.
"""
