"""Operations users (argon2 password hashes, a role each) and their login sessions."""
