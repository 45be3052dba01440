public enum TowerCarrierHostPlaceholder {}
