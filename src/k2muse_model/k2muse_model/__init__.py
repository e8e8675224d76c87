"""The model contract between training and inference: folder format, input features, engines."""
