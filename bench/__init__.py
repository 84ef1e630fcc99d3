"""The benchmark harness: tasks, data, episodes, training, evaluation, results, report."""
