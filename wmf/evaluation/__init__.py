"""Ranking: exact batched top-k (`topk`) and the held-out metrics computed from it (`metrics`)."""
