"""Chips: crop boxes out of images, the Spark extraction, the Petastorm chip dataset and its reject reasons."""
