public enum CarrierKitPlaceholder {}
