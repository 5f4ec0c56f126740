"""The aesthetics ranker: a Siamese scorer of product photos learned from relative judgements.

Modules (all but services, selectors, clicks, views and tasks are plain PyTorch, no Django):
features (frozen EfficientNet-Lite0 views), model (the scorer and its file), pairs,
degradations, training (hinge loss), pipeline (sources -> trained scorer), evaluation,
reasons (why a photo looks poor), scoring (the documented entry point: score_images).
"""
