"""The channels: each translates one outside service's messages to the flows' plain ones and back: Twilio, the
console and Telegram (its routers still in bot/flows/*_telegram.py until they move, issue 14)."""
