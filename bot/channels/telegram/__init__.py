"""Telegram, the cadres' channel: `dispatcher` (aiogram's dispatcher, the retrying client, the cadre middleware),
`webhook` (the webhook, with its fast path around aiogram for visit answers), `sender` (the outbox's Telegram rows
and the one text splitter) and `lean` (aiogram imported with its models built when first used). The routers still
live in bot/flows/*_telegram.py until the flows return plain values only (issue 14)."""
