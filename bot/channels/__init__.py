"""The channels: each translates one outside service's messages to the flows' plain ones and back (Twilio
here; the console and Telegram still in bot/ until they move, see issue 14)."""
