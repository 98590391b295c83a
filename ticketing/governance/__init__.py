"""治理任务 (governance tasks): the list, a task's page, opening, editing and closing, 每月一题."""
