"""Finetuning, prompting and reference methods, one file each."""
