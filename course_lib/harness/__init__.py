"""What runs and grades the course: claims, the evidence report, the notebook runner, the classroom
(nbgrader), benchmarks and the DDP pretraining entry point.
"""
