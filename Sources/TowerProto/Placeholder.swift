// replaced by proto/generate
