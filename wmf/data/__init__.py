"""Data the stages share: interactions and their files' readers, ids, splits, the generator."""
