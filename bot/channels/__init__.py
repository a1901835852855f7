"""The channels: each translates one outside service's messages to the flows' plain ones and back: Twilio, the
console and Telegram. Only this room imports aiogram or twilio (the layout test says so)."""
