public enum TwilioCarrierPlaceholder {}
