"""The staff inbox (收件箱): messages about tickets, and the unread count in the navigation."""
