"""Batch jobs over a model repository (beside serving/http): the corpus job, `ovtext-batch`."""
