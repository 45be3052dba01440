public enum CarrierConformancePlaceholder {}
