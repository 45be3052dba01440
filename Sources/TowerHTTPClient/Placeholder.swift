public enum TowerHTTPClientPlaceholder {}
