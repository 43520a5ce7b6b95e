"""The baselines editing is measured against: finetuning (``finetune_full``, ``finetune_lora``,
``finetune_local``, ``finetune_samples``, ``finetune_reward``), prompting (``prompt``) and the references
``none`` (the unedited model, the floor) and ``oracle`` (the world's own answer, the ceiling); one file per
method (see :mod:`editbench.methods`, which registers them). ``finetune_full`` holds the image finetuning
loop the other finetuning methods share; the text track's is :mod:`editbench.tracks.text.finetune`.
"""
