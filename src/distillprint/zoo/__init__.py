"""The distillation zoo: students we distil ourselves from real teachers, with controls.

``build_zoo`` (``distillprint zoo build --config configs/zoo/<name>.yaml``) collects teacher
answers through the normal store, fine-tunes student models with LoRA under accelerate,
probes every model through the normal collection path and writes one answer file per model
plus ``pairs.csv``, the input of ``distillprint benchmark lineage``.
"""
