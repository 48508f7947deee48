"""Training conversations from translated datasets: threads, chat templates, retention, tasks, splits.

    python -m threads DATASET OUTPUT --base_model M --instruction_prompt P [flags]
"""
