"""The channels: each translates one outside service's messages to the flows' plain ones and back: Twilio and
the console here; Telegram still in bot/telegram.py and bot/flows/*_telegram.py until it moves (issue 14)."""
