public enum TowerStandardServices {}
