public enum TowerStore {}
