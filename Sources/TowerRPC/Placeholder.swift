public enum TowerRPCPlaceholder {}
