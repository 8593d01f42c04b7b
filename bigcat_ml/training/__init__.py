"""training: fine-tune a keras.applications backbone with a new head on the chip dataset."""
