"""What a method implements and builds on: ``Method``, ``Batch``, ``TaskSpec`` and the shared backbones."""
