/* replaced by proto/generate */
