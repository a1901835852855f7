"""Telegram, the cadres' channel: `dispatcher` (aiogram's dispatcher, the retrying client, the cadre middleware),
`webhook` (the webhook, with its fast path around aiogram for visit answers), the routers `onboarding` (invites,
/start, /whoami, /lang) and `escalation` (the township queue's buttons), `sender` (the outbox's Telegram rows and
the one text splitter) and `lean` (aiogram imported with its models built when first used). The visit chat itself
(bot.flows.visit_telegram) returns plain values only."""
