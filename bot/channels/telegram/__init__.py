"""Telegram, the cadres' channel: the sender of the outbox's Telegram rows and its text splitter (the
dispatcher and routers still in bot/telegram.py and bot/flows/*_telegram.py until they move, issue 14)."""
