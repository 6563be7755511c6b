"""Procedural wildlife-camera scenes: animals, people, vehicles, vegetation, rain, night IR.

One generator family serves two users: the camera simulator (whole scenes, frame by frame) and
the model's training script (labelled crops). Seeds keep them apart: a test scene never reuses a
training sample.
"""
