print("twilio")
